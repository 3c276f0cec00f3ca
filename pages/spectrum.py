import streamlit as st

st.title("Spectrum")
