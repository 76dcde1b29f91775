"""The napari side of the plugin: readers, writers, samples, widgets and layer edits.

Everything here adapts the headless core in :mod:`napari_medseg` to napari layers.
"""
