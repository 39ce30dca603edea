"""Preview environments: named from a branch, with a TTL, reaped, put to sleep, capped by quotas."""
