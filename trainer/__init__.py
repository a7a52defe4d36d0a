"""Training backend: IAA regressor and multi-task classifier on timm backbones.

Imports core, never Qt or the GUI. Its inputs are files (an HDF5 training set,
a run spec); its outputs are files in the run directory.
"""
