"""browser app: sign-in throttles (failed sign-ins counted in the database), billing
entity logos (bytes in the database), invoice indexes for the list's keyset paging by
number and by total

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 20:20:34.348866

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sign_in_throttles',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('window_start', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_sign_in_throttles'))
    )
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.create_index('ix_sign_in_throttles_window_start', ['window_start'], unique=False)

    op.create_table('billing_entity_logos',
    sa.Column('billing_entity_id', sa.Uuid(), nullable=False),
    sa.Column('account_id', sa.Uuid(), nullable=False),
    sa.Column('content_type', sa.String(length=20), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_billing_entity_logos_account_id_accounts')),
    sa.ForeignKeyConstraint(['billing_entity_id'], ['billing_entities.id'], name=op.f('fk_billing_entity_logos_billing_entity_id_billing_entities'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('billing_entity_id', name=op.f('pk_billing_entity_logos'))
    )
    with op.batch_alter_table('billing_entity_logos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_billing_entity_logos_account_id'), ['account_id'], unique=False)

    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('ix_invoices_account_number', ['account_id', 'invoice_number', 'id'], unique=False)
        batch_op.create_index('ix_invoices_account_total', ['account_id', 'total_minor', 'id'], unique=False)



def downgrade():
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index('ix_invoices_account_total')
        batch_op.drop_index('ix_invoices_account_number')

    with op.batch_alter_table('billing_entity_logos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_billing_entity_logos_account_id'))

    op.drop_table('billing_entity_logos')
    with op.batch_alter_table('sign_in_throttles', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_in_throttles_window_start')

    op.drop_table('sign_in_throttles')
