"""Flask extensions, created unbound and initialised in `create_app`."""

from __future__ import annotations

from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import BigInteger, Integer, MetaData
from sqlalchemy.orm import DeclarativeBase, registry

# Stable constraint names so Alembic autogenerate and both databases agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    # Money in minor units outgrows 32 bits quickly (21 million EUR in cents): every int
    # column is 64-bit. SQLite's INTEGER already is, and must stay INTEGER for rowids.
    registry = registry(
        metadata=MetaData(naming_convention=NAMING_CONVENTION),
        type_annotation_map={int: BigInteger().with_variant(Integer, "sqlite")},
    )


# Objects stay readable after commit: services commit, routes then serialise them.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
# Browser pages only: the JSON API authenticates with API keys, never cookies, and its
# blueprints are exempted from CSRF in create_app.
csrf = CSRFProtect()
login_manager = LoginManager()
