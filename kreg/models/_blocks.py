# Temporary: moved to kreg.lab.models.blocks (removed once every importer is updated).
from kreg.lab.models.blocks import *  # noqa: F401,F403
from kreg.lab.models.blocks import activate, classifier_head, dense_block, dropout, input_stack, kernel_constraint, kernel_regularizer  # noqa: F401
