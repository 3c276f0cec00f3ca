import streamlit as st

st.title("Benchmark")
