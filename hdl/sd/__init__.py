"""The SmartDeal accelerator (smartdeal.md V-B): rebuild engines, PE lines, slices and controller."""
