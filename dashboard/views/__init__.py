"""Dashboard pages: one script per page, run by ``st.navigation`` from ``dashboard/app.py``.

Each page reads: widgets -> params -> cached (or live) run -> figures from
:mod:`lltools.viz`, using the shared helpers of :mod:`dashboard.common`.
"""
