"""Project-wide fixtures: the offline replica and a MongoDB server (MONGODB_URI or SecantusDB)."""

from tests.mongo_fixtures import *  # noqa: F403
from tests.replica.fixtures import *  # noqa: F403
