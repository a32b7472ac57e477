"""Public pages for shoppers: the click-to-reveal page, its embeddable button and the embed script."""
