"""Tests mirror the modules of model/ and search/; integration tests use real processes."""
