"""Images in, model inputs out: finding files (inputs), decoding and preprocessing them
exactly as timm's eval transform does (preprocess), the worker pipeline that batches them
(pipeline), and the digits data set that ships with scikit-learn (datasets)."""
