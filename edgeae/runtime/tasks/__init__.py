"""Runtime tasks on frames: anomaly detection, denoising, compression, augmentation."""
