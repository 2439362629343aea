"""INT8 calibration: calibration data sets, explicit Q/DQ quantization, calibration report."""
