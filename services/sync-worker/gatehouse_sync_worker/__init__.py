"""Gatehouse sync-worker: talks to targets, fills tool caches, drives target status."""
