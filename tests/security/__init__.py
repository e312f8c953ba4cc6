"""Attacks on the trust boundaries (issue 11): one test per attack, each failing before the fix."""
