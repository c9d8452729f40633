package roon.neo4jtest;

import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.CountDownLatch;

import org.neo4j.configuration.GraphDatabaseSettings;
import org.neo4j.configuration.connectors.BoltConnector;
import org.neo4j.configuration.connectors.BoltConnectorInternalSettings;
import org.neo4j.configuration.connectors.ConnectorPortRegister;
import org.neo4j.configuration.connectors.ConnectorType;
import org.neo4j.configuration.helpers.SocketAddress;
import org.neo4j.dbms.api.DatabaseManagementService;
import org.neo4j.dbms.api.DatabaseManagementServiceBuilder;
import org.neo4j.graphdb.GraphDatabaseService;
import org.neo4j.kernel.internal.GraphDatabaseAPI;

/**
 * A throw-away Neo4j Community DBMS for roon's tests: Bolt on 127.0.0.1, authentication on.
 *
 * <pre>
 *   ROON_NEO4J_TEST_PASSWORD=... java -cp ... roon.neo4jtest.Neo4jTestServer [--port N] [--home DIR] [--exit-on-stdin-eof]
 * </pre>
 *
 * <p>Port 0 (the default) takes a free port, so several test runs on one machine never
 * collide; the one line {@code ready bolt://127.0.0.1:PORT} on stdout says which, once
 * Bolt accepts connections and user {@code neo4j} has the password. Without
 * {@code --home} the DBMS lives in a fresh temporary directory that is deleted on exit;
 * with it, an existing home (say one that {@code neo4j-admin database import} filled) is
 * used and kept. SIGTERM (or, with {@code --exit-on-stdin-eof}, the parent closing our
 * stdin, which a parent killed by SIGKILL does too) shuts the DBMS down cleanly and
 * prints {@code stopped}. Everything else Neo4j says goes to its own logs under the home.
 */
public final class Neo4jTestServer {
    private static final String PASSWORD_ENV = "ROON_NEO4J_TEST_PASSWORD";
    // Neo4j's own minimum (dbms.security.auth_minimum_password_length).
    private static final int MIN_PASSWORD_LENGTH = 8;
    // How long Bolt may take to accept a TCP connection after the DBMS says it started.
    private static final Duration BOLT_WAIT = Duration.ofSeconds(30);
    // Bolt's grace for open connections on shutdown: the tests close theirs before.
    private static final Duration SHUTDOWN_WAIT = Duration.ofMillis(500);

    private Neo4jTestServer() {}

    public static void main(String[] args) throws Exception {
        int port = 0;
        Path home = null;
        boolean watchStdin = false;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--port" -> port = Integer.parseInt(args[++i]);
                case "--home" -> home = Path.of(args[++i]).toAbsolutePath();
                case "--exit-on-stdin-eof" -> watchStdin = true;
                default -> fail("unknown argument " + args[i]
                        + "; usage: [--port N] [--home DIR] [--exit-on-stdin-eof]");
            }
        }
        String password = System.getenv(PASSWORD_ENV);
        if (password == null || password.length() < MIN_PASSWORD_LENGTH) {
            fail(PASSWORD_ENV + " must hold the password for user neo4j ("
                    + MIN_PASSWORD_LENGTH + "+ characters)");
        }
        boolean temporary = home == null;
        Path dir = temporary ? Files.createTempDirectory("roon-neo4j-test-") : home;

        DatabaseManagementService dbms = new DatabaseManagementServiceBuilder(dir)
                .setConfig(BoltConnector.enabled, true)
                .setConfig(BoltConnector.listen_address, new SocketAddress("127.0.0.1", port))
                .setConfig(BoltConnector.encryption_level, BoltConnector.EncryptionLevel.DISABLED)
                .setConfig(GraphDatabaseSettings.auth_enabled, true)
                // LOAD CSV reads <home>/import only, as in the server distribution and the
                // Docker image (embedded, the default is the whole file system)
                .setConfig(GraphDatabaseSettings.load_csv_file_url_root, dir.resolve("import"))
                // no anonymous usage report: this machine talks to nobody
                .setConfig(GraphDatabaseSettings.udc_enabled, false)
                // a test server: small page cache, no pre-allocated 250 MB log files
                .setConfig(GraphDatabaseSettings.pagecache_memory, 128L * 1024 * 1024)
                .setConfig(GraphDatabaseSettings.preallocate_logical_logs, false)
                // Bolt waits 5 s for its connections and 5 s for its threads on shutdown,
                // even when none are left; a test run stops the server every time
                .setConfig(BoltConnectorInternalSettings.connection_shutdown_wait_time, SHUTDOWN_WAIT)
                .setConfig(BoltConnectorInternalSettings.thread_pool_shutdown_wait_time, SHUTDOWN_WAIT)
                .build();

        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            dbms.shutdown();
            if (temporary) {
                deleteTree(dir);
            }
            System.out.println("stopped");
            System.out.flush();
            stopped.countDown();
        }, "roon-neo4j-test-shutdown"));

        // The embedded API runs as an unrestricted user, so it may set the password that
        // Bolt clients must then give; CHANGE NOT REQUIRED lets them run queries at once.
        GraphDatabaseService system = dbms.database(GraphDatabaseSettings.SYSTEM_DATABASE_NAME);
        system.executeTransactionally(
                "ALTER USER neo4j SET PASSWORD $password CHANGE NOT REQUIRED",
                Map.of("password", password));
        GraphDatabaseService neo4j = dbms.database(GraphDatabaseSettings.DEFAULT_DATABASE_NAME);
        neo4j.executeTransactionally("RETURN 1");

        int bound = ((GraphDatabaseAPI) neo4j).getDependencyResolver()
                .resolveDependency(ConnectorPortRegister.class)
                .getLocalAddress(ConnectorType.BOLT)
                .getPort();
        waitForBolt(bound);
        System.out.println("ready bolt://127.0.0.1:" + bound);
        System.out.flush();

        if (watchStdin) {
            InputStream in = System.in;
            while (in.read() != -1) {
                // anything the parent writes is ignored; only EOF matters
            }
            System.exit(0); // runs the shutdown hook
        }
        stopped.await();
    }

    private static void waitForBolt(int port) throws InterruptedException {
        long deadline = System.nanoTime() + BOLT_WAIT.toNanos();
        while (true) {
            try (Socket socket = new Socket()) {
                socket.connect(new InetSocketAddress("127.0.0.1", port), 1000);
                return;
            } catch (IOException e) {
                if (System.nanoTime() > deadline) {
                    fail("Bolt on 127.0.0.1:" + port + " refused connections for "
                            + BOLT_WAIT.toSeconds() + " s: " + e.getMessage());
                }
                Thread.sleep(100);
            }
        }
    }

    private static void deleteTree(Path root) {
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                        throws IOException {
                    Files.delete(file);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException exc)
                        throws IOException {
                    Files.delete(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            System.err.println("could not delete " + root + ": " + e.getMessage());
        }
    }

    private static void fail(String message) {
        System.err.println("neo4j test server: " + message);
        System.exit(2);
    }
}
