"""The patent's experiments as product features: the classifier augmentation study and the
reader studies (realism / relevance, and the public quiz). Django-free modules: stats,
augmentation, report. Django side: services, views."""
