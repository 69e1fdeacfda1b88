"""lamsim: supervised generation of tool-use trajectories.

Importing this package stays cheap: it must not import Textual or litellm.
"""

__version__ = "0.1.0"
