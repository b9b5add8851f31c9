"""The SmartDeal accelerator back end: command formats, memory layouts, pass mapping, Programs."""
