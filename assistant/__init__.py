"""A retrieval-augmented research assistant over machine-learning paper abstracts.

The environment defaults below must be in place before numpy, torch or any
Hugging Face library is imported, which is why they live in the package root:
- offline hub access fails fast instead of retrying for a minute;
- OpenBLAS with one thread avoids a ~100 ms stall when numpy scores right after
  a torch encode on small machines (measured on 2 cores);
- telemetry of Chroma and Gradio stays off.
"""

import os

for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "ANONYMIZED_TELEMETRY": "False",
    "GRADIO_ANALYTICS_ENABLED": "False",
}.items():
    os.environ.setdefault(_key, _value)

__version__ = "0.1.0"
