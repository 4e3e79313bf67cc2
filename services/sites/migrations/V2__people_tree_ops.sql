-- Plans, quotas and status of networks; the site tree and settings; accounts,
-- sessions, memberships, invitations and join requests; ops tokens and the
-- audit log. Everything but sessions, ops tokens, the audit log and the
-- idempotency keys is derived from events by `state::apply`.
ALTER TABLE networks
    ADD COLUMN status              text        NOT NULL DEFAULT 'active',
    ADD COLUMN notice              text        NOT NULL DEFAULT '',
    ADD COLUMN suspended_at        timestamptz,
    ADD COLUMN plan                text        NOT NULL DEFAULT 'small',
    ADD COLUMN quota_sites         bigint      NOT NULL DEFAULT 0,
    ADD COLUMN quota_members       bigint      NOT NULL DEFAULT 0,
    ADD COLUMN quota_storage_bytes bigint      NOT NULL DEFAULT 0;

ALTER TABLE network_idempotency
    ADD COLUMN invitation_id uuid;

ALTER TABLE sites
    ADD COLUMN parent_id     uuid REFERENCES sites (id),
    ADD COLUMN path          uuid[]      NOT NULL DEFAULT '{}',
    ADD COLUMN archived_at   timestamptz,
    ADD COLUMN description   text        NOT NULL DEFAULT '',
    ADD COLUMN languages     text[]      NOT NULL DEFAULT '{en}',
    ADD COLUMN city          text        NOT NULL DEFAULT '',
    ADD COLUMN country       text        NOT NULL DEFAULT '',
    ADD COLUMN latitude      double precision,
    ADD COLUMN longitude     double precision,
    ADD COLUMN tags          text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN feed_urls     text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN custom_domain text,
    ADD COLUMN invite_only   boolean     NOT NULL DEFAULT false,
    ADD COLUMN updated_at    timestamptz NOT NULL DEFAULT now();
CREATE UNIQUE INDEX sites_custom_domain_key ON sites (custom_domain) WHERE custom_domain IS NOT NULL;
CREATE INDEX sites_path ON sites USING gin (path);
CREATE INDEX sites_tags ON sites USING gin (tags);

-- Former slugs of renamed sites, so old links still find them.
CREATE TABLE site_aliases (
    network_id uuid NOT NULL REFERENCES networks (id),
    slug       text NOT NULL,
    site_id    uuid NOT NULL REFERENCES sites (id),
    PRIMARY KEY (network_id, slug)
);

CREATE TABLE accounts (
    id            uuid        PRIMARY KEY,
    email         text        NOT NULL CONSTRAINT accounts_email_key UNIQUE,
    display_name  text        NOT NULL,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- The key that seals each account's personal data in its events. Deleting it
-- makes that data unreadable everywhere, backups of the events included.
CREATE TABLE account_keys (
    account_id uuid  PRIMARY KEY,
    key        bytea NOT NULL
);

CREATE TABLE sessions (
    id         uuid        PRIMARY KEY,
    account_id uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id);

-- scope_id is the network's id for a network-wide role, else the site's id.
CREATE TABLE memberships (
    network_id uuid        NOT NULL REFERENCES networks (id),
    scope_id   uuid        NOT NULL,
    account_id uuid        NOT NULL,
    role       smallint    NOT NULL,
    joined_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_id, account_id)
);
CREATE INDEX memberships_account ON memberships (account_id);
CREATE INDEX memberships_network ON memberships (network_id, account_id);

CREATE TABLE invitations (
    id          uuid        PRIMARY KEY,
    network_id  uuid        NOT NULL REFERENCES networks (id),
    scope_id    uuid        NOT NULL,
    role        smallint    NOT NULL,
    expires_at  timestamptz NOT NULL,
    email_hash  bytea,
    accepted_by uuid,
    accepted_at timestamptz
);

CREATE TABLE join_requests (
    id           uuid        PRIMARY KEY,
    network_id   uuid        NOT NULL REFERENCES networks (id),
    scope_id     uuid        NOT NULL,
    account_id   uuid        NOT NULL,
    message      text        NOT NULL DEFAULT '',
    status       text        NOT NULL DEFAULT 'pending',
    requested_at timestamptz NOT NULL DEFAULT now(),
    decided_at   timestamptz
);
CREATE UNIQUE INDEX join_requests_pending ON join_requests (scope_id, account_id) WHERE status = 'pending';

CREATE TABLE ops_tokens (
    id         uuid        PRIMARY KEY,
    name       text        NOT NULL CONSTRAINT ops_tokens_name_key UNIQUE,
    scopes     text[]      NOT NULL,
    token_hash bytea       NOT NULL CONSTRAINT ops_tokens_hash_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE audit_log (
    id           bigserial   PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    token_name   text        NOT NULL,
    action       text        NOT NULL,
    network_slug text        NOT NULL DEFAULT '',
    outcome      text        NOT NULL,
    detail       text        NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_network ON audit_log (network_slug, id);
