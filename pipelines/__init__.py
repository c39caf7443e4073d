"""Jobs that glue I/O, blockwise execution and algorithms: one module per job."""
