"""Server-rendered pages for warehouse staff: one blueprint per area, all behind sign-in. The app
factory registers them (app/__init__.py, the one list of blueprints)."""
