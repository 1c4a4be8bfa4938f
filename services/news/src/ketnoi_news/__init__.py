"""Ketnoi news: "Tin tức" from official feeds, "Công vụ" answers from a knowledge base, the
welcome message, and alerts broadcast to followers."""
