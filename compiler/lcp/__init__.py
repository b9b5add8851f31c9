"""The LCP array's back end: command format, memory layouts, tiling and the Program writer."""
