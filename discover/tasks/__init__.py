"""Built-in tasks; importing the package registers them in this order (the order
`plasticity list` and error messages show): the default demo's first."""

from . import oja_pca  # noqa: F401  # isort: skip
from . import imitate  # noqa: F401  # isort: skip
from . import fit_protocols  # noqa: F401  # isort: skip
from . import infer  # noqa: F401  # isort: skip
from . import error_driven  # noqa: F401  # isort: skip
from . import reward_driven  # noqa: F401  # isort: skip
from . import correlation_detection  # noqa: F401  # isort: skip
from . import oja_subspace  # noqa: F401  # isort: skip
from . import inhibitory_balance  # noqa: F401  # isort: skip
from . import few_shot  # noqa: F401  # isort: skip
