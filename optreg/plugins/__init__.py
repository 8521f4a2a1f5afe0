"""The plugin host: entry points, isolation and time limits, and the built-in plugin.
"""
