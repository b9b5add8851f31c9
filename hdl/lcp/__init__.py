"""The LCP latency-optimized array (lcp.md III-B) and its controller."""
