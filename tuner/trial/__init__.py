"""The trial process: the parent side (``parent``) starts and watches a child (``child``) that owns
TensorFlow, the dataset and the model; they talk in the typed messages of ``protocol``."""
