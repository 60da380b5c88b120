"""The gallery's tables: numbered migrations and what each column means.

Migrations are numbered SQL scripts applied in order, each in its own transaction together
with its row in ``schema_version``; a file made by an older artbias is brought up to date by
the writer, and a file made by a newer one is refused rather than misread.
"""

from __future__ import annotations

MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE campaigns (
        campaign_id VARCHAR PRIMARY KEY, name VARCHAR, config_json VARCHAR, created_at TIMESTAMP
    );
    CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, campaign_id VARCHAR, kind VARCHAR, generator VARCHAR,
        prompt VARCHAR, modifier VARCHAR, full_prompt VARCHAR, seed INTEGER, algorithm VARCHAR,
        settings_json VARCHAR, clip VARCHAR, generator_identity_json VARCHAR,
        versions_json VARCHAR, status VARCHAR, error VARCHAR, evaluations INTEGER,
        history_json VARCHAR, started_at TIMESTAMP, finished_at TIMESTAMP, duration_s DOUBLE
    );
    CREATE TABLE artworks (
        artwork_id VARCHAR PRIMARY KEY, run_id VARCHAR, role VARCHAR, rank INTEGER,
        image_sha256 VARCHAR, image_path VARCHAR, similarity DOUBLE, realism DOUBLE,
        latent_json VARCHAR, created_at TIMESTAMP
    );
    CREATE TABLE labels (
        artwork_id VARCHAR, labeller VARCHAR, predicted VARCHAR, confidence DOUBLE,
        probabilities_json VARCHAR, PRIMARY KEY (artwork_id, labeller)
    );
    CREATE TABLE labellers (
        labeller VARCHAR PRIMARY KEY, classes_json VARCHAR, confusion_json VARCHAR,
        identity_json VARCHAR
    );
    """,
    2: """
    ALTER TABLE runs ADD COLUMN replicate INTEGER DEFAULT 0;
    """,
    # CLIP image embeddings (``artbias gallery embed``): one vector per artwork and CLIP, for
    # the embedding map and "more like this". Columns: EMBEDDING_COLUMN_DOCS below.
    3: """
    CREATE TABLE embedding_models (
        clip VARCHAR PRIMARY KEY, dim INTEGER, identity_json VARCHAR, created_at TIMESTAMP
    );
    CREATE TABLE embeddings (
        artwork_id VARCHAR, clip VARCHAR, image_sha256 VARCHAR, vector FLOAT[], created_at TIMESTAMP,
        PRIMARY KEY (artwork_id, clip)
    );
    """,
}
SCHEMA_VERSION = max(MIGRATIONS)
# Derived data, rebuilt by ``artbias gallery embed``: not part of TABLES (the export's tables).
EMBEDDING_TABLES = ("embedding_models", "embeddings")
EMBEDDING_COLUMN_DOCS: dict[str, dict[str, str]] = {
    "embedding_models": {
        "clip": "the CLIP name the embeddings were computed with (as given to `artbias gallery embed --clip`)",
        "dim": "length of its image embeddings",
        "identity_json": "the CLIP's identity (open_clip architecture, folder or tag, sha256 of its weights files)",
        "created_at": "when embeddings of this CLIP were first written (UTC)",
    },
    "embeddings": {
        "artwork_id": "the embedded artwork",
        "clip": "the CLIP that embedded it (embedding_models.clip)",
        "image_sha256": "sha256 of the PNG that was embedded: an embedding counts only while it "
                        "matches the artwork's image_sha256",
        "vector": "the unit-norm CLIP image embedding (FLOAT[dim])",
        "created_at": "when the row was written (UTC)",
    },
}
TABLES = ("campaigns", "runs", "artworks", "labels", "labellers", "schema_version")

# What each column means: shown in exports' README and available to the app.
COLUMN_DOCS: dict[str, dict[str, str]] = {
    "campaigns": {
        "campaign_id": "the campaign's id (derived from its name)",
        "name": "the name given in the campaign TOML",
        "config_json": "the validated campaign configuration as JSON",
        "created_at": "when the campaign was first run (UTC)",
    },
    "runs": {
        "run_id": "hash of the job key (campaign, kind, generator, prompt, modifier, seed, algorithm)",
        "campaign_id": "the campaign the run belongs to",
        "kind": "'search' (CLIP-guided) or 'baseline' (unguided samples from the prior)",
        "generator": "generator spec as given (catalogue name or FAMILY:PATH)",
        "prompt": "the base prompt; NULL for baseline runs",
        "modifier": "the style modifier applied to the prompt, '' for none",
        "full_prompt": "the text CLIP saw (prompt with its modifier); NULL for baselines",
        "seed": "search seed, or the sampling seed of a baseline chunk",
        "algorithm": "search algorithm (ga, nsga2, cmaes, random) or 'prior' for baselines",
        "settings_json": "the full search settings (SearchConfig) or baseline settings",
        "clip": "the CLIP model name the search was scored with",
        "generator_identity_json": "the generator's identity (family, config, weights hash)",
        "versions_json": "versions of python, torch and the other tracked packages",
        "status": "'done' or 'failed'",
        "error": "the error of a failed run, NULL otherwise",
        "evaluations": "generator+CLIP evaluations the search used",
        "history_json": "best CLIP similarity after each generation",
        "started_at": "when the job started (UTC)",
        "finished_at": "when the job finished (UTC)",
        "duration_s": "the job's wall-clock seconds",
        "replicate": "which of the campaign's disjoint seed sets the run belongs to (0 when not replicated)",
    },
    "artworks": {
        "artwork_id": "run_id || ':' || index within the run",
        "run_id": "the run that made the artwork",
        "role": "'chosen' (the run's answer), 'top' (runners-up), 'pareto' (front members) or 'baseline'",
        "rank": "0 for the chosen artwork, then runners-up in order; sample index for baselines",
        "image_sha256": "sha256 of the PNG bytes",
        "image_path": "the PNG's path relative to the gallery folder",
        "similarity": "CLIP cosine similarity to full_prompt; NULL for baselines",
        "realism": "the discriminator's realism score, NULL where the generator has none",
        "latent_json": "the latent vector (flat search vector) as a JSON list",
        "created_at": "when the row was written (UTC)",
    },
    "labels": {
        "artwork_id": "the labelled artwork",
        "labeller": "labeller spec, e.g. 'classifier-world', 'time-world', 'clip:clip-world', "
                    "'human:alice' (an imported annotation) or 'intended' (the class the latent asked for)",
        "predicted": "the most probable class (or attribute value, or the known label)",
        "confidence": "its probability (1 for annotations and intended classes)",
        "probabilities_json": "every class's probability as {class: p}",
    },
    "labellers": {
        "labeller": "labeller spec as in labels.labeller",
        "classes_json": "class names in the labeller's order",
        "confusion_json": "confusion matrix counts on world renders (rows = true class, columns = predicted); "
                          "NULL for zero-shot labellers and truth sources",
        "identity_json": "the labeller's identity (architecture, weights path, CLIP, templates)",
    },
    "schema_version": {
        "version": "a migration applied to the file",
        "applied_at": "when it was applied (UTC)",
    },
}


