"""DermGAN: semantic maps, ROI crops, networks, losses, training, sampling, evaluation, gap filling."""
