import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """One tensorflow-datasets data_dir for the whole session (builders prepare once)."""
    return str(tmp_path_factory.mktemp("tfds"))


@pytest.fixture(scope="session")
def wine_splits(tfds_dir):
    from kreg.data import load_splits

    return load_splits("wine", seed=0, data_dir=tfds_dir)


@pytest.fixture(scope="session")
def mnist1d_splits(tfds_dir):
    from kreg.data import load_splits

    return load_splits("mnist1d", seed=0, data_dir=tfds_dir)
