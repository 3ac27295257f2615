"""lltools dashboard: the Streamlit app (thin pages over the lltools core)."""
