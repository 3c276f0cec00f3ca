import streamlit as st

st.title("Identifiability")
