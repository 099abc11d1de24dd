"""The advisor's pure core: scan for opportunities, predict their benefit from calibrated
estimates, decide the mode, remember rejections, and report calibration."""
