"""r1cli: the DeepSeek-R1 training recipe as composable command-line stages."""

__version__ = "0.1.0"
