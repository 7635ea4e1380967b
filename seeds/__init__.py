"""Demo and fixture data generators (seeded Faker, so a seed gives the same department twice)."""
