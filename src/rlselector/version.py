"""The package version, in a module of its own so every layer can record it without importing the
package's public facade (which imports the layers: that would be a circle)."""

__version__ = "0.1.0"
