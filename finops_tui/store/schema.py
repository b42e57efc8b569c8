"""Cache schema: FOCUS 1.2 `charges`, `sources`, `resources`, allocation state, and migrations."""

from __future__ import annotations

from collections.abc import Callable

import duckdb

# 26 integer digits hold a KRW reservation purchase; 12 decimals keep sub-cent unit charges exact.
MONEY_TYPE = "DECIMAL(38,12)"

# (column, DuckDB type) in table order. FOCUS 1.2 names; `x_` columns are Azure or finops-tui extras.
CHARGE_COLUMNS: list[tuple[str, str]] = [
    ("ChargePeriodStart", "TIMESTAMP"),
    ("ChargePeriodEnd", "TIMESTAMP"),
    ("BillingPeriodStart", "TIMESTAMP"),
    ("BillingPeriodEnd", "TIMESTAMP"),
    ("BillingAccountId", "VARCHAR"),
    ("BillingAccountName", "VARCHAR"),
    ("SubAccountId", "VARCHAR"),
    ("SubAccountName", "VARCHAR"),
    ("BilledCost", MONEY_TYPE),
    ("EffectiveCost", MONEY_TYPE),
    ("ListCost", MONEY_TYPE),
    ("ContractedCost", MONEY_TYPE),
    ("BillingCurrency", "VARCHAR"),
    ("ChargeCategory", "VARCHAR"),
    ("ChargeClass", "VARCHAR"),
    ("ChargeFrequency", "VARCHAR"),
    ("ChargeDescription", "VARCHAR"),
    ("PricingCategory", "VARCHAR"),
    ("PricingQuantity", "DOUBLE"),
    ("PricingUnit", "VARCHAR"),
    ("ConsumedQuantity", "DOUBLE"),
    ("ConsumedUnit", "VARCHAR"),
    ("ServiceName", "VARCHAR"),
    ("ServiceCategory", "VARCHAR"),
    ("ServiceSubcategory", "VARCHAR"),
    ("ProviderName", "VARCHAR"),
    ("PublisherName", "VARCHAR"),
    ("InvoiceIssuerName", "VARCHAR"),
    ("ResourceId", "VARCHAR"),  # lower-cased: Azure ids vary in case between rows
    ("ResourceName", "VARCHAR"),
    ("ResourceType", "VARCHAR"),
    ("RegionId", "VARCHAR"),
    ("RegionName", "VARCHAR"),
    ("AvailabilityZone", "VARCHAR"),
    ("CommitmentDiscountId", "VARCHAR"),
    ("CommitmentDiscountName", "VARCHAR"),
    ("CommitmentDiscountStatus", "VARCHAR"),
    ("CommitmentDiscountType", "VARCHAR"),
    ("CommitmentDiscountCategory", "VARCHAR"),
    ("SkuId", "VARCHAR"),
    ("SkuPriceId", "VARCHAR"),
    ("Tags", "MAP(VARCHAR, VARCHAR)"),
    ("x_ResourceGroupName", "VARCHAR"),
    ("x_SkuMeterCategory", "VARCHAR"),
    ("x_SkuMeterName", "VARCHAR"),
    ("x_ChargeDate", "DATE"),  # day of ChargePeriodStart: every view groups by day
    ("source_id", "INTEGER"),
    # Integer stand-in for ResourceId (see resource_keys): joining 10M rows to per-resource tags on
    # an integer is about 4x faster than on the long id strings.
    ("x_ResourceKey", "INTEGER"),
]

# FOCUS 1.3 columns added by migration 1 -> 2 (ALTER TABLE appends them, so they stay at the end here).
# A provider or an upstream tool (e.g. a Kubernetes cost tool) split the row: `ResourceId` keeps the shared
# host, `AllocatedResourceId` names the consumer the row's cost belongs to.
ALLOCATION_COLUMNS: list[tuple[str, str]] = [
    ("AllocatedMethodId", "VARCHAR"),
    ("AllocatedMethodDetails", "VARCHAR"),  # JSON, as the file gave it
    ("AllocatedResourceId", "VARCHAR"),  # lower-cased like ResourceId
    ("AllocatedResourceName", "VARCHAR"),
    ("AllocatedTags", "MAP(VARCHAR, VARCHAR)"),
    ("ServiceProviderName", "VARCHAR"),
    ("HostProviderName", "VARCHAR"),
]
V1_CHARGE_COLUMNS = list(CHARGE_COLUMNS)
CHARGE_COLUMNS += ALLOCATION_COLUMNS

_V1 = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL, migrated_at TIMESTAMP NOT NULL);

CREATE SEQUENCE source_ids START 1;
CREATE TABLE sources (
    source_id INTEGER PRIMARY KEY DEFAULT nextval('source_ids'),
    kind VARCHAR NOT NULL,          -- focus-file | azure-export | sync-query | sync-cost-details | demo
    scope VARCHAR NOT NULL,         -- billing account / subscription the rows cover (lower-case)
    path VARCHAR,
    file_hash VARCHAR,
    provider VARCHAR,
    focus_version VARCHAR,
    metric VARCHAR NOT NULL,        -- actual (BilledCost only) | amortized (EffectiveCost only) | focus (both)
    period_start DATE,
    period_end DATE,                -- exclusive
    row_count BIGINT NOT NULL DEFAULT 0,
    currencies VARCHAR,
    imported_at TIMESTAMP NOT NULL
);

CREATE TABLE charges ({", ".join(f'"{name}" {kind}' for name, kind in V1_CHARGE_COLUMNS)});

CREATE TABLE resource_keys (
    ResourceId VARCHAR PRIMARY KEY,
    resource_key INTEGER NOT NULL UNIQUE
);

CREATE TABLE resources (
    ResourceId VARCHAR PRIMARY KEY,
    ResourceName VARCHAR,
    ResourceType VARCHAR,
    x_ResourceGroupName VARCHAR,
    SubAccountId VARCHAR,
    SubAccountName VARCHAR,
    RegionId VARCHAR,
    ServiceName VARCHAR,
    ProviderName VARCHAR,
    Tags MAP(VARCHAR, VARCHAR),
    first_seen DATE,
    last_seen DATE
);

-- Effective tags per resource: manual > provider (after key aliases) > rule. Joined to charges at query time.
CREATE TABLE resource_tags (
    ResourceId VARCHAR NOT NULL,
    tag_key VARCHAR NOT NULL,       -- canonical key after alias folding
    tag_value VARCHAR NOT NULL,
    origin VARCHAR NOT NULL,        -- provider | rule | manual
    raw_key VARCHAR,                -- the key as the provider spelled it
    resource_key INTEGER,           -- resource_keys.resource_key, the join key to charges.x_ResourceKey
    PRIMARY KEY (ResourceId, tag_key)
);

CREATE TABLE tag_aliases (alias_key VARCHAR PRIMARY KEY, canonical_key VARCHAR NOT NULL);

CREATE SEQUENCE tag_edit_ids START 1;
CREATE TABLE tag_edits (
    edit_id INTEGER PRIMARY KEY DEFAULT nextval('tag_edit_ids'),
    ResourceId VARCHAR NOT NULL,
    tag_key VARCHAR NOT NULL,
    old_value VARCHAR,
    new_value VARCHAR,
    origin VARCHAR NOT NULL DEFAULT 'manual',
    created_at TIMESTAMP NOT NULL,
    batch_id INTEGER,
    undone BOOLEAN NOT NULL DEFAULT false,
    push_status VARCHAR NOT NULL DEFAULT 'pending',   -- pending | pushed | failed | local
    push_error VARCHAR,
    pushed_at TIMESTAMP
);

CREATE TABLE recommendation_state (
    rec_id VARCHAR PRIMARY KEY,
    state VARCHAR NOT NULL,         -- dismissed | snoozed | noted
    until DATE,
    note VARCHAR,
    updated_at TIMESTAMP NOT NULL
);

-- The last recommendation run, kept so the screen shows it at once and refreshes when a new run ends.
CREATE TABLE recommendation_runs (
    run_at TIMESTAMP NOT NULL,
    data_end DATE,
    metric VARCHAR,
    currency VARCHAR,
    duration_ms DOUBLE
);
CREATE TABLE recommendation_results (
    rec_id VARCHAR NOT NULL,
    position INTEGER NOT NULL,      -- rank in the run, by monthly impact
    kind VARCHAR NOT NULL,
    team VARCHAR,
    currency VARCHAR NOT NULL,
    monthly_impact {MONEY_TYPE} NOT NULL,
    payload VARCHAR NOT NULL        -- the Recommendation as JSON (recommend.engine reads it back)
);

CREATE TABLE sync_state (
    scope VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    window_start DATE NOT NULL,
    window_end DATE NOT NULL,
    status VARCHAR NOT NULL,        -- done | failed
    rows BIGINT,
    api_path VARCHAR,               -- query | cost-details
    last_success TIMESTAMP,
    last_error VARCHAR,
    throttled_seconds DOUBLE DEFAULT 0,
    PRIMARY KEY (scope, metric, window_start)
);

CREATE TABLE budgets (
    budget_id VARCHAR PRIMARY KEY,
    scope VARCHAR,
    name VARCHAR,
    amount {MONEY_TYPE},
    currency VARCHAR,
    time_grain VARCHAR,
    period_start DATE,
    period_end DATE,
    current_spend {MONEY_TYPE},
    forecast_spend {MONEY_TYPE},
    synced_at TIMESTAMP
);

CREATE TABLE benefit_recommendations (
    rec_id VARCHAR PRIMARY KEY,
    scope VARCHAR,
    kind VARCHAR,
    term VARCHAR,
    look_back VARCHAR,
    currency VARCHAR,
    commitment_amount {MONEY_TYPE},
    savings_amount {MONEY_TYPE},
    cost_without_benefit {MONEY_TYPE},
    savings_percentage DOUBLE,
    raw_json VARCHAR,
    synced_at TIMESTAMP
);
"""

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _create_v1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(_V1)


def _v2_allocation_columns(con: duckdb.DuckDBPyConnection) -> None:
    """FOCUS 1.3 allocation and provider columns on `charges`; rows already cached have none (NULL)."""
    for name, kind in ALLOCATION_COLUMNS:
        con.execute(f'ALTER TABLE charges ADD COLUMN "{name}" {kind}')


def _v3_contract_commitments(con: duckdb.DuckDBPyConnection) -> None:
    """The FOCUS 1.3 Contract Commitment dataset: one row per commitment of a contract (no charges).

    Re-importing a contract's file replaces that contract's rows; `path`, `file_hash` and `imported_at` say
    where they came from (they are not cost windows, so they have no `sources` row).
    """
    con.execute(
        f"""
        CREATE TABLE contract_commitments (
            ContractCommitmentId VARCHAR NOT NULL,
            ContractId VARCHAR NOT NULL,
            ContractCommitmentCategory VARCHAR,     -- Spend | Usage
            ContractCommitmentType VARCHAR,
            ContractCommitmentDescription VARCHAR,
            ContractCommitmentCost {MONEY_TYPE},
            ContractCommitmentQuantity DOUBLE,
            ContractCommitmentUnit VARCHAR,
            ContractCommitmentPeriodStart TIMESTAMP,
            ContractCommitmentPeriodEnd TIMESTAMP,   -- exclusive
            ContractPeriodStart TIMESTAMP,
            ContractPeriodEnd TIMESTAMP,             -- exclusive
            BillingCurrency VARCHAR,
            path VARCHAR,
            file_hash VARCHAR,
            imported_at TIMESTAMP NOT NULL,
            PRIMARY KEY (ContractId, ContractCommitmentId)
        )
        """
    )


def _v4_shared_costs(con: duckdb.DuckDBPyConnection) -> None:
    """What the shared cost pools (shared.toml) derive, rebuilt in every write that changes their inputs.

    `charges.x_SharedPool` marks each row with the 1-based position of the first pool that matches it (NULL:
    direct cost); a column beside the facts because the tree filters every expansion on it (an integer
    column costs ~5% per query, a join on a marker table far more). `shared_pools` keeps the pools as
    applied, `shared_splits` each pool's cost per day and currency split to its recipients (NULL recipient:
    the part no recipient could take, shown as "(unallocated)").
    """
    con.execute('ALTER TABLE charges ADD COLUMN "x_SharedPool" SMALLINT')
    con.execute(
        """
        CREATE TABLE shared_pools (
            pool_index SMALLINT PRIMARY KEY,    -- 1-based position in shared.toml
            name VARCHAR NOT NULL,
            method VARCHAR NOT NULL,            -- even | proportional | fixed | metric
            to_key VARCHAR NOT NULL,            -- the tag key whose values receive the split
            definition VARCHAR NOT NULL,        -- the pool as applied (JSON), to tell when shared.toml changed
            applied_at TIMESTAMP NOT NULL
        )
        """
    )
    con.execute(
        f"""
        CREATE TABLE shared_splits (
            pool_index SMALLINT NOT NULL,
            day DATE NOT NULL,
            currency VARCHAR NOT NULL,
            recipient VARCHAR,                  -- a value of the pool's `to` key; NULL: nobody could take it
            effective {MONEY_TYPE} NOT NULL,
            billed {MONEY_TYPE} NOT NULL
        )
        """
    )


def _v5_storage_sources(con: duckdb.DuckDBPyConnection) -> None:
    """(Large estates issue) what each export run or hub window synced.

    `storage_runs`: one row per Cost Management export run (its manifest.json) found in Azure Storage, so a
    sync downloads only runs that are new or changed. `signature` digests the names and ETags of the run
    folder's blobs as listed; a run is fetched again when it changes. Hub month windows use `sync_state`
    (scope `hub:…`, metric `focus`), like the API sync's windows. Never holds a SAS token or a key.
    """
    con.execute(
        """
        CREATE TABLE storage_runs (
            source_key VARCHAR NOT NULL,    -- export:ACCOUNT/CONTAINER/PREFIX, as `sync --list-sources` names it
            run_path VARCHAR NOT NULL,      -- the run's manifest.json blob name
            run_id VARCHAR,                 -- runInfo.runId
            manifest_etag VARCHAR,
            signature VARCHAR NOT NULL,     -- sha256 of the run folder's (blob name, ETag) pairs
            parts INTEGER,
            bytes BIGINT,
            rows BIGINT,
            scope VARCHAR,                  -- whose cost (exportConfig.resourceId's scope, lower-case)
            dataset VARCHAR,                -- FocusCost | ActualCost | AmortizedCost | ...
            period_start DATE,
            period_end DATE,                -- exclusive
            submitted_at TIMESTAMP,         -- runInfo.submittedTime: the newest run of a period wins
            status VARCHAR NOT NULL,        -- done | failed | superseded
            last_error VARCHAR,
            synced_at TIMESTAMP NOT NULL,
            source_id INTEGER,              -- sources.source_id of its rows while they are in the cache
            PRIMARY KEY (source_key, run_path)
        )
        """
    )


def _v6_summaries(con: duckdb.DuckDBPyConnection) -> None:
    """(Cold speed issue) `daily_summary` and `summary_state` (see store.summaries and docs/summaries.md); the
    next migration builds them, with the rollups."""
    from finops_tui.store import summaries

    summaries.create_tables(con)


def _v7_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """(Provider splits' speed) the rollups: `daily_summary` summed by fewer columns (store.summaries.ROLLUPS).
    A summary built at version 6 fills them from its own rows (no read of `charges`); a summary never built is
    built from the charges at version 9."""
    from finops_tui.store import summaries

    summaries.create_rollups(con)
    if summaries.stored_tag_key(con) is not None:
        # The wide tables of this version, summed as they were then (the summary became star-shaped at 9).
        for rollup in summaries.ROLLUPS:
            con.execute(f"INSERT INTO {rollup.table} {summaries.rollup_sql(rollup, summaries.SUMMARY_TABLE)}")


def _v8_tag_sets(con: duckdb.DuckDBPyConnection) -> None:
    """(Import speed) provider tags as tag sets: `charges.x_TagSet` names a row's tags by their JSON text, and
    `tag_sets` holds each text's MAP once (store.tag_sets). Rows already cached keep their Tags MAP (a read takes
    the tag set, else the MAP), so the migration adds a column and a table and rewrites no row."""
    con.execute('ALTER TABLE charges ADD COLUMN IF NOT EXISTS "x_TagSet" VARCHAR')
    con.execute("CREATE TABLE IF NOT EXISTS tag_sets (x_TagSet VARCHAR PRIMARY KEY, Tags MAP(VARCHAR, VARCHAR))")


def _v9_star_summary(con: duckdb.DuckDBPyConnection) -> None:
    """(Import speed) the summary and the rollup without the team become star-shaped: their dimension columns kept
    once per combination in `summary_groups`, their rows keyed by group id, read through views under the old
    names (store.summaries). Converted from their own rows; a summary never built is built from the charges."""
    from finops_tui.store import summaries

    summaries.create_star(con)
    if summaries.stored_tag_key(con) is None:
        summaries.rebuild(con)


# MIGRATIONS[n] upgrades a cache at version n to n + 1; version 0 is an empty file.
MIGRATIONS: dict[int, Migration] = {
    0: _create_v1,
    1: _v2_allocation_columns,
    2: _v3_contract_commitments,
    3: _v4_shared_costs,
    4: _v5_storage_sources,
    5: _v6_summaries,
    6: _v7_rollups,
    7: _v8_tag_sets,
    8: _v9_star_summary,
}
SCHEMA_VERSION = len(MIGRATIONS)
