"""Tests of the central registry."""
