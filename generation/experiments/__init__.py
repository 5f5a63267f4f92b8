"""The patent's experiments as product features: the classifier augmentation study and the
reader studies (realism / relevance, and the public quiz). Django-free modules: stats,
augmentation, report. Django side: augmentation_study (the classifier study), reader_studies
(studies, invites, answers, blinded images), views, forms and admin of the reader studies."""
