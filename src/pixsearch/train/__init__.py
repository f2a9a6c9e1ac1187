"""The learning side: trainers, export. Needs the ``[train]`` extra (torch, EfficientNet code, onnx).

Importing it without the extra is a one-line ModelError that names the install, so every
``pixsearch train ...`` command says exactly what to do instead of printing an ImportError traceback.
"""

from pixsearch.models.backbones import require_train_extra

require_train_extra("pixsearch train")
