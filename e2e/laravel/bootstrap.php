<?php

// Boots just enough of a real Laravel 8 application for broadcasting, from
// Debian's packages (php-laravel-framework, php-predis; no composer): the
// container, config, events, bus, the sync queue, Redis (predis) and the
// broadcast manager with its `redis` driver, exactly as a Laravel app's
// config/broadcasting.php and config/database.php would set them up.
//
// Environment (the names a Laravel .env uses, except the prefix):
//   REDIS_HOST, REDIS_PORT   the Redis Laravel publishes to (127.0.0.1:6379)
//   LARAVEL_REDIS_PREFIX     database.redis.options.prefix; defaults to what
//                            Laravel 8 derives from APP_NAME: laravel_database_

declare(strict_types=1);

require_once 'Illuminate/autoload.php'; // /usr/share/php is on PHP's include_path on Debian

use Illuminate\Config\Repository;
use Illuminate\Foundation\Application;
use Illuminate\Support\Facades\Facade;
use Illuminate\Support\Str;

// The application's own classes (app/), as composer's PSR-4 autoload would.
spl_autoload_register(function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = __DIR__ . '/app/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

function env_or(string $name, string $default): string
{
    $value = getenv($name);
    return $value === false || $value === '' ? $default : $value;
}

$app = new Application(__DIR__);
$app->instance('config', new Repository([
    'app' => [
        'name' => env_or('APP_NAME', 'Laravel'),
        'env' => 'testing',
        'debug' => true,
        'providers' => [],
    ],
    'broadcasting' => [
        'default' => 'redis',
        'connections' => [
            'redis' => ['driver' => 'redis', 'connection' => 'default'],
        ],
    ],
    'database' => [
        'redis' => [
            'client' => 'predis',
            'options' => [
                // getenv() distinguishes "unset" from "set to empty": an empty
                // prefix is a valid Laravel setting.
                'prefix' => getenv('LARAVEL_REDIS_PREFIX') !== false
                    ? getenv('LARAVEL_REDIS_PREFIX')
                    : Str::slug(env_or('APP_NAME', 'laravel'), '_') . '_database_',
            ],
            'default' => [
                'host' => env_or('REDIS_HOST', '127.0.0.1'),
                'port' => (int) env_or('REDIS_PORT', '6379'),
                'database' => 0,
            ],
        ],
    ],
    // ShouldBroadcast events and broadcast notifications are queued jobs;
    // the sync queue runs them at once, through the same serialisation a
    // queue worker would use.
    'queue' => [
        'default' => 'sync',
        'connections' => ['sync' => ['driver' => 'sync']],
    ],
]));

foreach ([
    Illuminate\Bus\BusServiceProvider::class,
    Illuminate\Queue\QueueServiceProvider::class,
    Illuminate\Redis\RedisServiceProvider::class,
    Illuminate\Broadcasting\BroadcastServiceProvider::class,
    Illuminate\Notifications\NotificationServiceProvider::class,
] as $provider) {
    $app->register($provider);
}
$app->singleton(Illuminate\Contracts\Debug\ExceptionHandler::class, Illuminate\Foundation\Exceptions\Handler::class);
Facade::setFacadeApplication($app);
$app->boot();

return $app;
