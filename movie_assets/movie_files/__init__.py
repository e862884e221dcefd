"""Movie files on artifact storage: the stored request, edits, revisions, run reports and the build
cache, all at the paths of ``layout``. No Dagster."""
