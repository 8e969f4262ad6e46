# Temporary: moved to kreg.lab.plan (removed once every importer is updated).
from kreg.lab.plan import *  # noqa: F401,F403
from kreg.lab.plan import DropBlockSpec, EarlyStoppingSpec, ElasticNetSpec, RegularizationPlan, ScheduleSpec, SWASpec  # noqa: F401
