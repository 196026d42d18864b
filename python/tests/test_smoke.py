def test_import():
    import sparsedb
    assert sparsedb.native_version
