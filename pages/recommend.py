import streamlit as st

st.title("Recommend")
