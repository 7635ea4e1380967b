"""One blueprint per audience: auth, officer, coordinator, hr, admin, and the public pages."""
