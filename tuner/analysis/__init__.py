"""What the measurements mean to the user: the reasons and warnings (``advice``)."""
