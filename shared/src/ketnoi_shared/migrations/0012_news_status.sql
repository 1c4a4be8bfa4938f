-- News: what the public status check ("#tra_cuu LD-7K2Q9") may tell a citizen, projected from
-- reports.triaged.v1 (coarse state only), and the lookups per citizen and day (rate limit).
-- depends: 0007_news

CREATE TABLE IF NOT EXISTS case_status (
    reference   text PRIMARY KEY,
    case_id     text NOT NULL,
    status      text NOT NULL,
    version     integer NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS status_lookups (
    citizen_pseudonym text NOT NULL,
    day               date NOT NULL,
    lookups           integer NOT NULL,
    PRIMARY KEY (citizen_pseudonym, day)
);
