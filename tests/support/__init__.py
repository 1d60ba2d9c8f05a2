# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers shared by the collection's tests (not part of the collection)."""
