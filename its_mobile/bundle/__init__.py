"""Sample-app bundles: Android and iOS project templates filled in from a model manifest."""
