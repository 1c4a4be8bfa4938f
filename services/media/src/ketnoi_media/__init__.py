"""Ketnoi media: fetches citizens' attachments from Zalo before the links expire, keeps the
original sealed with its SHA-256 and a display copy with the metadata stripped."""
